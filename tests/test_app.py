"""The app started on 127.0.0.1 and driven through gradio_client, with a tiny model and the real MTCNN detector."""

import csv
import socket
from pathlib import Path

import pytest
from PIL import Image

from conftest import prepared
from genderage.labels import AGE_GROUPS, GENDERS, JOINT_LABELS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    paths = {"face": folder / "astronaut.png", "no_face": folder / "coffee.png", "corrupt": folder / "corrupt.jpg",
             "text": folder / "notes.png", "animated": folder / "anim.gif"}
    Image.fromarray(data.astronaut()).save(paths["face"])
    Image.fromarray(data.coffee()).save(paths["no_face"])
    paths["corrupt"].write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    paths["text"].write_text("hello, I am not a picture")
    frames = [Image.fromarray(data.astronaut()).resize((128, 128)), Image.new("RGB", (128, 128))]
    frames[0].save(paths["animated"], save_all=True, append_images=frames[1:])
    return paths


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(client, feedback folder) for a running app."""
    import app as app_module
    from gradio_client import Client

    from genderage.modeling import build_timm_model, save_model

    folder = tmp_path_factory.mktemp("app")
    model, processor = build_timm_model("test_efficientnet", JOINT_LABELS, 32)
    save_model(model, processor, folder / "model")
    port = free_port()
    args = app_module.parse_args(["--model", str(folder / "model"), "--port", str(port), "--feedback-dir", str(folder / "feedback")])
    demo = app_module.create_app(args)
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), folder / "feedback"
    demo.close()


def test_one_face_in_a_real_photo(app, photos):
    from gradio_client import handle_file

    client, _ = app
    answer = client.predict(handle_file(str(photos["face"])), api_name="/predict")
    assert answer["message"] == "1 face found."
    (face,) = answer["faces"]
    x0, y0, x1, y1 = face["box"]
    assert 150 < x0 < x1 < 300 and 30 < y0 < y1 < 200  # the astronaut's face, not the whole 512 px photo
    assert face["detector_confidence"] > 0.9
    assert set(face["gender"]) == set(GENDERS) and sum(face["gender"].values()) == pytest.approx(1, abs=1e-4)
    assert list(face["age_group"]) == AGE_GROUPS and 0 < face["age"] < 100


def test_no_face_says_so_and_offers_the_whole_image(app, photos):
    from gradio_client import handle_file

    answer = app[0].predict(handle_file(str(photos["no_face"])), api_name="/predict")
    assert answer["faces"] == [] and answer["message"].startswith("No face found")
    assert set(answer["whole_image"]["gender"]) == set(GENDERS)


@pytest.mark.parametrize("kind", ["corrupt", "text"])
def test_bad_files_get_a_message_not_an_error(app, photos, kind):
    from gradio_client import handle_file

    answer = app[0].predict(handle_file(str(photos[kind])), api_name="/predict")
    assert answer["faces"] == [] and "cannot be used as a photo" in answer["message"]


def test_animated_images_use_the_first_frame(app, photos):
    from gradio_client import handle_file

    answer = app[0].predict(handle_file(str(photos["animated"])), api_name="/predict")
    assert answer["message"].startswith("Animated image: the first frame was analysed.")


def test_batch_endpoint_answers_each_image_in_order(app, photos):
    from gradio_client import handle_file

    answers = app[0].predict([handle_file(str(photos[k])) for k in ("face", "corrupt", "no_face")], api_name="/predict_batch")
    assert [len(a["faces"]) for a in answers] == [1, 0, 0]
    assert "cannot be used" in answers[1]["message"] and answers[2]["message"].startswith("No face found")


def test_feedback_is_stored_only_with_consent(app, photos, tmp_path):
    from gradio_client import handle_file

    client, feedback = app
    client.predict(handle_file(str(photos["face"])), False, False, 0.6, api_name="/analyse")
    refused = client.predict(1, "female", "40-49", False, api_name="/feedback")
    assert refused.startswith("Not saved") and not feedback.exists()
    saved = client.predict(1, "female", "40-49", True, api_name="/feedback")
    assert saved.startswith("Thank you")
    rows = list(csv.DictReader((feedback / "feedback.csv").open()))
    assert [(r["gender"], r["age_group"]) for r in rows] == [("female", "40-49")]
    assert rows[0]["predicted_gender"] in GENDERS and rows[0]["timestamp"]
    stored = sorted(p.relative_to(feedback).as_posix() for p in feedback.rglob("*") if p.is_file())
    assert stored == ["feedback.csv", rows[0]["file_name"]] and "astronaut" not in rows[0]["file_name"]
    # The app's folder is a source prepare_dataset.py ingests.
    out = prepared(tmp_path, f"feedback={feedback}", extra=["--min-side", "8"])
    assert (out / "report.json").exists() and "feedback" in (out / "README.md").read_text()


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    import app as app_module

    assert app_module.main(["--model", str(tmp_path / "nothing")]) == 2
    assert "cannot load the model" in capsys.readouterr().err


def test_face_crops_stay_inside_the_photo_when_they_fit():
    from genderage.faces import crop_face

    photo = Image.new("RGB", (200, 200), (200, 150, 100))
    crop = crop_face(photo, (60, 0, 200, 140))  # a face touching the top and right edges
    side = crop.width
    assert crop.size == (side, side) and 140 < side <= 200
    assert crop.getpixel((0, 0)) == crop.getpixel((side - 1, side - 1)) == (200, 150, 100)  # no black border
    small = Image.new("RGB", (100, 60), (200, 150, 100))
    assert crop_face(small, (10, 0, 90, 60)).getpixel((0, 80)) == (0, 0, 0)  # larger than the photo: black border below
