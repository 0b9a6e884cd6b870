"""The Gradio demo: upload / webcam / examples, numbered faces, per-face answers, consented feedback, JSON API."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
from gradio_client import handle_file
from PIL import Image, ImageDraw, ImageFont

from ..labels import AGE_GROUPS, GENDERS
from .analysis import FaceAnalyzer, analyse_file, save_feedback

BOX_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]
INTRO = """# genderage
Perceived **gender** and **age group** for every face in a photo. Labels are binary perceived gender as
annotated in public datasets, not identity; expect errors, especially for children, older people and groups that
are rare in the training data. Nothing you upload is stored unless you send a correction and tick the consent box."""
# The API page's sample call: a public-domain portrait on a stable URL (Gradio's default sample for a file is a PDF).
SAMPLE_PHOTO_URL = "https://raw.githubusercontent.com/matplotlib/matplotlib/v3.8.4/lib/matplotlib/mpl-data/sample_data/grace_hopper.jpg"
PREDICT_DESCRIPTION = ("Every face in one photo (a file: JPEG, PNG, WebP, GIF, ...) with its perceived gender, age group and "
                       "estimated age. Returns {\"faces\": [{\"box\", \"detector_confidence\", \"gender\", \"age_group\", \"age\"}], "
                       "\"message\"}. No face found means no answer, unless whole_image=True (for photos that are already a "
                       "cropped face). A file that is not a usable photo gets no faces and a message saying why.")
NO_PHOTO_YET = "No photo yet: upload one or click an example. A photo is analysed as soon as it arrives."
PREDICT_BATCH_DESCRIPTION = "Several photos in one call: a list of /predict answers, in the same order."
# The browser sends a live frame this often at most; while one is being answered it sends none, so a slow machine
# skips frames instead of queueing them (Gradio's webcam waits while its event is pending).
LIVE_FRAME_SECONDS = 0.05
LIVE_TIME_LIMIT = 600  # seconds of live video per start; Start again to go on
LIVE_START = "Press the record button under the camera to start live answers."


EXAMPLES = Path(__file__).parent / "examples"  # public domain / CC0: examples/SOURCES.md


def example_images() -> list[str]:
    """The example photos shown under the upload: two portraits and a photo without a face."""
    return [str(EXAMPLES / name) for name in ("astronaut.png", "grace_hopper.jpg", "coffee.png")]


def draw_faces(image: Image.Image, faces) -> Image.Image:
    """The photo with a numbered box around every face; the number sits on a filled tag so it reads on any background."""
    canvas = image.copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(image.size) / 250))
    font = ImageFont.load_default(max(14, round(max(image.size) / 20)))
    for number, face in enumerate(faces, start=1):
        colour = BOX_COLOURS[(number - 1) % len(BOX_COLOURS)]
        x0, y0, x1, y1 = face.box
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        left, top, right, bottom = font.getbbox(str(number))
        tag_w, tag_h = right - left + 2 * width, bottom - top + 2 * width
        tag_y = y0 - tag_h if y0 >= tag_h else y0  # above the box, or inside it at the photo's top edge
        draw.rectangle((x0, tag_y, x0 + tag_w, tag_y + tag_h), fill=colour)
        draw.text((x0 + width - left, tag_y + width - top), str(number), fill="white", font=font)
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
    for number, face in enumerate(answer["faces"], start=1):
        age = f" · about {face['age']:.0f} years" if face.get("age") is not None else ""
        rows.append(f"- Face {number}: gender {top(face['gender'])} · age group {top(face['age_group'])}{age}")
    return "\n".join(rows)


def analyse_frame(analyzer: FaceAnalyzer, frame: np.ndarray | None, uncertain_below: float) -> tuple[np.ndarray | None, str]:
    """One live webcam frame: the frame with numbered boxes, and one line per face. Only the fast detector looks
    (a frame without a face costs a few milliseconds; the next frame follows at once)."""
    if frame is None:
        return None, LIVE_START
    image = Image.fromarray(frame).convert("RGB")
    faces, answer = analyzer.analyse(image, thorough=False)
    if not faces:
        answer["message"] = "No face in view."
    return np.asarray(draw_faces(image, faces)), describe(answer, uncertain_below)


def upload_path(value) -> str | None:
    """The file path inside what an image component sends when Gradio's own decoding is switched off."""
    return value.get("path") if isinstance(value, dict) else value


def build_demo(analyzer: FaceAnalyzer, feedback_dir: str | Path, uncertain_below: float = 0.6) -> gr.Blocks:
    def ui_analyse(value, whole_image, flip, threshold):
        image, faces, answer = analyse_file(analyzer, upload_path(value), whole_image, flip)
        shown = draw_faces(image, faces) if image is not None else None
        return shown, describe(answer, threshold), answer, faces, ""

    def ui_button(value, whole_image, flip, threshold):
        # A click while an example or upload is still arriving sees no file yet: that photo is analysed as soon as it
        # arrives (ui_photo_changed), so say so in a toast and leave the answer alone instead of "No image was given".
        if upload_path(value) is None:
            gr.Info(NO_PHOTO_YET)
            return (gr.skip(),) * 5
        return ui_analyse(value, whole_image, flip, threshold)

    def ui_photo_changed(value, whole_image, flip, threshold):
        if upload_path(value) is None:  # the photo was removed: so is its answer
            return None, "", None, None, ""
        return ui_analyse(value, whole_image, flip, threshold)

    def api_predict(image: str, whole_image: bool = False) -> dict:
        return analyse_file(analyzer, image, whole_image)[2]

    def api_predict_batch(images: list[str], whole_image: bool = False) -> list[dict]:
        return [analyse_file(analyzer, path, whole_image)[2] for path in images or []]

    def send_feedback(number, gender, age_group, consent, faces):
        if faces is None:
            return "Analyse a photo first."
        if not faces:
            return "There is no face to correct: none was found in the last photo."
        index = int(number or 0) - 1
        if not 0 <= index < len(faces):
            return f"There is no face {number}; faces are numbered 1 to {len(faces)}."
        if not gender or not age_group:
            return "Choose the correct gender and age group."
        if not consent:
            return "Not saved: tick the consent box to store this face and your correction."
        save_feedback(feedback_dir, faces[index].crop, gender, age_group, faces[index].prediction, consent)
        return f"Thank you: the correction for face {index + 1} was saved."

    with gr.Blocks(title="genderage", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        faces_state = gr.State(None)  # None: nothing analysed yet; []: analysed, no face
        with gr.Row():
            with gr.Column():
                with gr.Tab("Upload") as upload_tab:
                    upload = gr.Image(type="filepath", sources=["upload", "clipboard"], label="Photo", elem_id="photo")
                with gr.Tab("Webcam") as webcam_tab:
                    webcam = gr.Image(type="filepath", sources=["webcam"], label="Webcam")
                with gr.Tab("Live", elem_id="live_tab") as live_tab:
                    live = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Live webcam", elem_id="live")
                threshold = gr.Slider(0.5, 0.95, value=uncertain_below, step=0.05, label="Say 'uncertain' below this probability")
                with gr.Column(elem_id="photo_controls") as photo_controls:  # hidden on the Live tab, which answers every frame
                    whole_image = gr.Checkbox(label="Whole image is one face (pre-cropped photo)")
                    flip = gr.Checkbox(label="Flip test-time augmentation (slower, slightly more accurate)", value=analyzer.flip)
                    with gr.Row():
                        analyse_upload = gr.Button("Analyse photo", variant="primary")
                        analyse_webcam = gr.Button("Analyse webcam shot")
                    gr.Examples(examples=example_images(), inputs=upload, label="Examples (public domain)", elem_id="examples")
            with gr.Column():
                live_faces = gr.Image(label="Live faces", format="jpeg", interactive=False, visible=False, elem_id="live_faces")
                live_summary = gr.Markdown(visible=False, elem_id="live_summary")
                annotated = gr.Image(type="pil", label="Faces", format="png", interactive=False, elem_id="faces")
                summary = gr.Markdown(elem_id="summary")
                answer_json = gr.JSON(label="Answer (as the API returns it)")
        with gr.Accordion("Was an answer wrong? Send a correction", open=False):
            with gr.Row():
                face_number = gr.Number(value=1, precision=0, label="Face number", minimum=1)
                # No pre-selected answer: a careless click must not send "0-2".
                true_gender = gr.Radio(GENDERS, value=None, label="Correct gender")
                true_age_group = gr.Dropdown(AGE_GROUPS, value=None, label="Correct age group")
            consent = gr.Checkbox(label="I agree that this face crop and my correction are stored to improve the model")
            send = gr.Button("Send correction")
            feedback_message = gr.Markdown()

        outputs = [annotated, summary, answer_json, faces_state, feedback_message]
        # preprocess=False: Gradio would decode the upload itself and fail on a bad file with a bare "Error";
        # the app gets the uploaded file's path instead and explains what is wrong with it.
        # The UI's own events stay out of the API docs, but are callable (the tests drive them like a browser).
        for button, source, name in ((analyse_upload, upload, "analyse"), (analyse_webcam, webcam, "analyse_webcam")):
            button.click(ui_button, [source, whole_image, flip, threshold], outputs, api_name=name,
                         api_visibility="undocumented", preprocess=False)
        # An upload or a clicked example is answered as soon as it arrives: no second click, and no race with one.
        upload.change(ui_photo_changed, [upload, whole_image, flip, threshold], outputs, api_visibility="private",
                      preprocess=False)
        # Live: each streamed frame is answered on the fast path; the live answer shows only while its tab is open.
        live.stream(lambda frame, threshold: analyse_frame(analyzer, frame, threshold), [live, threshold], [live_faces, live_summary],
                    stream_every=LIVE_FRAME_SECONDS, time_limit=LIVE_TIME_LIMIT, show_progress="hidden", api_visibility="private")
        showing_live = [gr.update(visible=True)] * 2 + [gr.update(visible=False)] * 4
        showing_photos = [gr.update(visible=False)] * 2 + [gr.update(visible=True)] * 4
        live_outputs = [live_faces, live_summary, annotated, summary, answer_json, photo_controls]
        live_tab.select(lambda: showing_live, None, live_outputs, api_visibility="private")
        for tab in (upload_tab, webcam_tab):
            tab.select(lambda: showing_photos, None, live_outputs, api_visibility="private")
        send.click(send_feedback, [face_number, true_gender, true_age_group, consent, faces_state], feedback_message,
                   api_name="feedback", api_visibility="undocumented")

        # The JSON API takes files, not decoded images, so every upload gets a clear answer.
        api_image = gr.File(type="filepath", label="image: a photo file", visible=False)
        api_images = gr.File(type="filepath", file_count="multiple", label="images: photo files", visible=False)
        api_whole = gr.Checkbox(False, label="whole_image: the image is one cropped face (no detection)", visible=False)
        api_answer = gr.JSON(label="answer", visible=False)
        # Gradio's sample for a file input is a PDF; ours runs (instance override: there is no parameter for it).
        api_image.example_payload = lambda: handle_file(SAMPLE_PHOTO_URL)
        api_images.example_payload = lambda: [handle_file(SAMPLE_PHOTO_URL)]
        api_whole.example_payload = lambda: False
        gr.Button(visible=False).click(api_predict, [api_image, api_whole], api_answer, api_name="predict",
                                       api_description=PREDICT_DESCRIPTION)
        gr.Button(visible=False).click(api_predict_batch, [api_images, api_whole], api_answer, api_name="predict_batch",
                                       api_description=PREDICT_BATCH_DESCRIPTION)
    return demo
