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
    from gradio_client import Client

    import app as app_module
    from genderage.training.modeling import build_timm_model, save_model

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
    assert 0.5 <= face["detector_confidence"] <= 1  # CenterFace reports faces whose heatmap peak passes 0.5
    assert set(face["gender"]) == set(GENDERS) and sum(face["gender"].values()) == pytest.approx(1, abs=1e-4)
    assert list(face["age_group"]) == AGE_GROUPS and 0 < face["age"] < 100


def test_no_face_means_no_gender_and_no_age(app, photos):
    from gradio_client import handle_file

    answer = app[0].predict(handle_file(str(photos["no_face"])), api_name="/predict")
    assert answer == {"faces": [], "message": answer["message"]}  # nothing else: no whole-image guess
    assert answer["message"].startswith("No face found") and "closer" in answer["message"] and "whole_image=True" in answer["message"]


def test_whole_image_only_when_asked(app, photos):
    from gradio_client import handle_file

    answer = app[0].predict(image=handle_file(str(photos["no_face"])), whole_image=True, api_name="/predict")
    (face,) = answer["faces"]
    assert face["box"] == [0, 0, 600, 400] and face["detector_confidence"] is None
    assert set(face["gender"]) == set(GENDERS) and answer["message"] == "Whole image treated as one face."
    batch = app[0].predict(images=[handle_file(str(photos["face"]))], whole_image=True, api_name="/predict_batch")
    assert batch[0]["faces"][0]["box"] == [0, 0, 512, 512]


def test_the_page_without_a_face_gives_no_answer_and_no_correction(app, photos):
    from gradio_client import Client, handle_file

    client = Client(app[0].src, verbose=False)  # a fresh session
    assert client.predict(1, "female", "40-49", True, api_name="/feedback") == "Analyse a photo first."
    shown, summary, answer, feedback_message = client.predict(handle_file(str(photos["no_face"])), False, False, 0.6, api_name="/analyse")
    assert answer["faces"] == [] and "Face 1" not in summary and summary.startswith("No face found")
    assert client.predict(1, "female", "40-49", True, api_name="/feedback") == "There is no face to correct: none was found in the last photo."
    shown, summary, answer, _ = client.predict(handle_file(str(photos["no_face"])), True, False, 0.6, api_name="/analyse")
    assert summary.startswith("Whole image treated as one face.") and "Face 1: gender" in summary


def test_the_page_explains_a_bad_file(app, photos):
    from gradio_client import handle_file

    shown, summary, answer, _ = app[0].predict(handle_file(str(photos["text"])), False, False, 0.6, api_name="/analyse")
    assert shown is None and answer["faces"] == []
    assert summary == "This file cannot be used as a photo: not an image (unrecognised format)."


def test_correction_form_starts_without_an_answer(app):
    props = {c["props"].get("label"): c["props"] for c in app[0].config["components"]}
    assert props["Correct age group"]["choices"] and props["Correct gender"]["choices"]
    assert props["Correct gender"].get("value") is None and props["Correct age group"].get("value") is None


def test_api_page_names_parameters_and_has_a_sample_that_is_a_photo(app):
    import httpx

    info = httpx.get(app[0].src.rstrip("/") + "/gradio_api/info").json()["named_endpoints"]
    assert sorted(info) == ["/predict", "/predict_batch"]  # the UI's own events stay undocumented
    for endpoint, names in (("/predict", ["image", "whole_image"]), ("/predict_batch", ["images", "whole_image"])):
        assert [p["parameter_name"] for p in info[endpoint]["parameters"]] == names
        assert all(p["label"].startswith(p["parameter_name"] + ":") for p in info[endpoint]["parameters"])
        assert info[endpoint]["description"]
        snippet = info[endpoint]["code_snippets"]["python"]
        assert "grace_hopper.jpg" in snippet and ".pdf" not in snippet and "whole_image=False" in snippet


@pytest.mark.parametrize("kind", ["corrupt", "text"])
def test_bad_files_get_a_message_not_an_error(app, photos, kind):
    from gradio_client import handle_file

    answer = app[0].predict(handle_file(str(photos[kind])), api_name="/predict")
    assert answer["faces"] == [] and "cannot be used as a photo" in answer["message"]


@pytest.mark.parametrize("size", [(1, 1), (5, 5), (11, 11), (1, 400), (400, 2)])
def test_images_too_small_for_a_face_are_told_so(app, tmp_path, size):
    from gradio_client import handle_file

    path = tmp_path / "tiny.png"
    Image.new("RGB", size, (200, 150, 120)).save(path)
    answer = app[0].predict(handle_file(str(path)), api_name="/predict")
    assert answer["faces"] == [] and "too small to contain a face" in answer["message"]
    whole = app[0].predict(handle_file(str(path)), True, api_name="/predict")  # asked for: the pixels are classified
    assert len(whole["faces"]) == 1


def test_animated_images_use_the_first_frame(app, photos):
    from gradio_client import handle_file

    answer = app[0].predict(handle_file(str(photos["animated"])), api_name="/predict")
    assert answer["message"].startswith("Animated image: the first frame was analysed.")


def test_batch_endpoint_answers_each_image_in_order(app, photos):
    from gradio_client import handle_file

    answers = app[0].predict([handle_file(str(photos[k])) for k in ("face", "corrupt", "no_face")], api_name="/predict_batch")
    assert [len(a["faces"]) for a in answers] == [1, 0, 0]
    assert "cannot be used" in answers[1]["message"] and answers[2]["message"].startswith("No face found")
    assert "gender" not in answers[2]


def test_feedback_is_stored_only_with_consent(app, photos, tmp_path):
    from gradio_client import handle_file

    client, feedback = app
    client.predict(handle_file(str(photos["face"])), False, False, 0.6, api_name="/analyse")
    assert client.predict(1, "female", None, True, api_name="/feedback") == "Choose the correct gender and age group."
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


def test_queue_limit_is_a_flag(monkeypatch):
    import app as app_module

    assert app_module.parse_args([]).max_queue == 64
    with pytest.raises(SystemExit):
        app_module.parse_args(["--max-queue", "0"])
    calls = {}

    class FakeDemo:
        def queue(self, **kwargs):
            calls["queue"] = kwargs

        def launch(self, **kwargs):
            calls["launch"] = kwargs

    monkeypatch.setattr(app_module, "create_app", lambda args: FakeDemo())
    assert app_module.main(["--max-queue", "5", "--concurrency", "3", "--port", "7999"]) == 0
    assert calls["queue"] == {"default_concurrency_limit": 3, "max_size": 5} and calls["launch"]["server_port"] == 7999


def test_face_crops_stay_inside_the_photo_when_they_fit():
    from genderage.serving.faces import crop_face

    photo = Image.new("RGB", (200, 200), (200, 150, 100))
    crop = crop_face(photo, (60, 0, 200, 140))  # a face touching the top and right edges
    side = crop.width
    assert crop.size == (side, side) and 140 < side <= 200
    assert crop.getpixel((0, 0)) == crop.getpixel((side - 1, side - 1)) == (200, 150, 100)  # no black border
    small = Image.new("RGB", (100, 60), (200, 150, 100))
    assert crop_face(small, (10, 0, 90, 60)).getpixel((0, 80)) == (0, 0, 0)  # larger than the photo: black border below


def test_a_live_frame_is_answered_on_the_fast_path(monkeypatch):
    """The live webcam's function: the frame comes back with the face boxed and one line per face; a frame without a
    face is answered by CenterFace alone (MTCNN never looks), and no frame yet says how to start."""
    import numpy as np

    from genderage.serving.analysis import FaceAnalyzer
    from genderage.serving.demo import EXAMPLES, LIVE_START, analyse_frame
    from genderage.serving.faces import FaceDetector
    from genderage.serving.inference import GenderAgeClassifier

    analyzer = FaceAnalyzer(GenderAgeClassifier.from_pretrained(), FaceDetector())
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = np.asarray(Image.open(EXAMPLES / "astronaut.png").convert("RGB").resize((512, 480)))
    drawn, summary = analyse_frame(analyzer, frame, 0.6)
    assert drawn.shape == frame.shape and (drawn != frame).any()
    assert summary.startswith("1 face found.") and "Face 1: gender" in summary
    monkeypatch.setattr(type(analyzer.detector.mtcnn), "detections", lambda self, images: pytest.fail("MTCNN looked at a live frame"))
    drawn, summary = analyse_frame(analyzer, np.full((480, 640, 3), 90, np.uint8), 0.6)
    assert summary == "No face in view." and drawn.shape == (480, 640, 3)
    assert analyse_frame(analyzer, None, 0.6) == (None, LIVE_START)
