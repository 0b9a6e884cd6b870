"""The Gradio demo: upload / webcam / examples, numbered faces, per-face answers, consented feedback, JSON API."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from .analysis import FaceAnalyzer, analyse_file, save_feedback
from .labels import AGE_GROUPS, GENDERS

BOX_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]
INTRO = """# genderage
Perceived **gender** and **age group** for every face in a photo. Labels are binary perceived gender as
annotated in public datasets, not identity; expect errors, especially for children, older people and groups that
are rare in the training data. Nothing you upload is stored unless you send a correction and tick the consent box."""


def example_images(folder: str | Path | None = None) -> list[str]:
    """Licence-clean example photos that ship inside installed packages (public domain)."""
    folder = Path(folder or Path(tempfile.gettempdir()) / "genderage_examples")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        from skimage import data

        for name, image in (("astronaut.png", data.astronaut()), ("coffee.png", data.coffee())):
            if not (folder / name).exists():
                Image.fromarray(image).save(folder / name)
            paths.append(str(folder / name))
    except ImportError:
        pass
    try:
        from matplotlib import cbook

        hopper = folder / "grace_hopper.jpg"
        if not hopper.exists():
            with cbook.get_sample_data("grace_hopper.jpg") as handle:
                hopper.write_bytes(handle.read())
        paths.insert(1, str(hopper))
    except (ImportError, OSError):
        pass
    return paths


def draw_faces(image: Image.Image, faces) -> Image.Image:
    """The photo with a numbered box around every face."""
    canvas = image.copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(image.size) / 250))
    for number, face in enumerate(faces, start=1):
        colour = BOX_COLOURS[(number - 1) % len(BOX_COLOURS)]
        x0, y0, x1, y1 = face.box
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        draw.text((x0 + width, max(0, y0 - 12 * width)), str(number), fill=colour, font_size=max(12, 10 * width))
    return canvas


def describe(answer: dict, uncertain_below: float) -> str:
    """One line per face, with 'uncertain' where the top probability is under the threshold."""

    def top(probabilities: dict | None) -> str:
        if not probabilities:
            return "–"
        label = max(probabilities, key=probabilities.get)
        p = probabilities[label]
        return f"uncertain ({label}? {p:.0%})" if p < uncertain_below else f"**{label}** {p:.0%}"

    rows = [answer["message"]]
    entries = [(str(i), face) for i, face in enumerate(answer["faces"], start=1)]
    if "whole_image" in answer:
        entries.append(("whole image", answer["whole_image"]))
    for name, face in entries:
        age = f" · about {face['age']:.0f} years" if face.get("age") is not None else ""
        rows.append(f"- Face {name}: gender {top(face['gender'])} · age group {top(face['age_group'])}{age}")
    return "\n".join(rows)


def build_demo(analyzer: FaceAnalyzer, feedback_dir: str | Path, uncertain_below: float = 0.6) -> gr.Blocks:
    def analyse_path(path, whole_image=False, flip=None):
        return analyse_file(analyzer, path, whole_image, flip)

    def ui_analyse(path, whole_image, flip, threshold):
        image, faces, answer = analyse_path(path, whole_image, flip)
        shown = draw_faces(image, faces) if image is not None else None
        return shown, describe(answer, threshold), answer, faces

    def api_predict(path):
        """One image (a file) → {"faces": [{box, detector_confidence, gender, age_group, age}], "message"}."""
        return analyse_path(path)[2]

    def api_predict_batch(paths):
        """Several images in one call → a list of /predict answers, in order."""
        return [analyse_path(path)[2] for path in paths or []]

    def send_feedback(number, gender, age_group, consent, faces):
        if not faces:
            return "Analyse a photo first."
        if not consent:
            return "Not saved: tick the consent box to store this face and your correction."
        if not gender or not age_group:
            return "Choose the correct gender and age group."
        index = int(number or 0) - 1
        if not 0 <= index < len(faces):
            return f"There is no face {number}; faces are numbered 1 to {len(faces)}."
        save_feedback(feedback_dir, faces[index].crop, gender, age_group, faces[index].prediction, consent)
        return f"Thank you: the correction for face {index + 1} was saved."

    with gr.Blocks(title="genderage", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        faces_state = gr.State([])
        with gr.Row():
            with gr.Column():
                with gr.Tab("Upload"):
                    upload = gr.Image(type="filepath", sources=["upload", "clipboard"], label="Photo")
                with gr.Tab("Webcam"):
                    webcam = gr.Image(type="filepath", sources=["webcam"], label="Webcam")
                whole_image = gr.Checkbox(label="Whole image is one face (pre-cropped photo)")
                flip = gr.Checkbox(label="Flip test-time augmentation (slower, slightly more accurate)", value=analyzer.flip)
                threshold = gr.Slider(0.5, 0.95, value=uncertain_below, step=0.05, label="Say 'uncertain' below this probability")
                with gr.Row():
                    analyse_upload = gr.Button("Analyse photo", variant="primary")
                    analyse_webcam = gr.Button("Analyse webcam shot")
                gr.Examples(examples=example_images(), inputs=upload, label="Examples (public domain)")
            with gr.Column():
                annotated = gr.Image(type="pil", label="Faces", format="png", interactive=False)
                summary = gr.Markdown()
                answer_json = gr.JSON(label="Answer (as the API returns it)")
        with gr.Accordion("Was an answer wrong? Send a correction", open=False):
            with gr.Row():
                face_number = gr.Number(value=1, precision=0, label="Face number", minimum=1)
                true_gender = gr.Radio(GENDERS, label="Correct gender")
                true_age_group = gr.Dropdown(AGE_GROUPS, label="Correct age group")
            consent = gr.Checkbox(label="I agree that this face crop and my correction are stored to improve the model")
            send = gr.Button("Send correction")
            feedback_message = gr.Markdown()

        outputs = [annotated, summary, answer_json, faces_state]
        # The UI's own events stay out of the API docs, but are callable (the tests drive them like a browser).
        analyse_upload.click(ui_analyse, [upload, whole_image, flip, threshold], outputs, api_name="analyse", api_visibility="undocumented")
        analyse_webcam.click(ui_analyse, [webcam, whole_image, flip, threshold], outputs, api_name="analyse_webcam", api_visibility="undocumented")
        send.click(send_feedback, [face_number, true_gender, true_age_group, consent, faces_state], feedback_message,
                   api_name="feedback", api_visibility="undocumented")

        # The JSON API takes files, not decoded images, so every upload gets a clear answer.
        api_file = gr.File(type="filepath", visible=False)
        api_files = gr.File(type="filepath", file_count="multiple", visible=False)
        api_answer = gr.JSON(visible=False)
        gr.Button(visible=False).click(api_predict, api_file, api_answer, api_name="predict")
        gr.Button(visible=False).click(api_predict_batch, api_files, api_answer, api_name="predict_batch")
    return demo
