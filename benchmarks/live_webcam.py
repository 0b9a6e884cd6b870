"""The app's live webcam mode in a real browser: Chromium's fake camera plays a 640x480 video of a face, the Live
tab streams it, and this counts the answered frames the page shows per second (and the server's time per frame).

Usage:
    python benchmarks/live_webcam.py [--model models/default] [--seconds 20] [--threads 1] [--photo PATH] [--json OUT]
           [--screenshot PNG]
Needs Chromium (Debian's `chromium`, or CHROMIUM_PATH) and playwright. --threads 1 runs both ONNX Runtime sessions on
one thread (the goal: 10 frames per second on one core for one face). The fake video loops a face moving a few
pixels per frame, so every answered frame differs from the last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAME_SIZE = (640, 480)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--use-fake-ui-for-media-stream",
                  "--use-fake-device-for-media-stream"]


def fake_camera_video(path: str | Path, photo: Image.Image, size: tuple[int, int] = FRAME_SIZE, frames: int = 60, fps: int = 30) -> Path:
    """A Y4M video (what Chromium's --use-file-for-fake-video-capture plays) of `photo` on a grey frame, drifting a few
    pixels to and fro."""
    width, height = size
    photo = photo.convert("RGB")
    photo.thumbnail((round(height * 0.9), round(height * 0.9)))
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(frames):
            shift = round(20 * np.sin(2 * np.pi * index / frames))
            frame = Image.new("RGB", size, (90, 90, 90))
            frame.paste(photo, ((width - photo.width) // 2 + shift, (height - photo.height) // 2))
            luma, blue, red = frame.convert("YCbCr").split()
            chroma_size = (width // 2, height // 2)
            out.write(b"FRAME\n" + luma.tobytes() + blue.resize(chroma_size).tobytes() + red.resize(chroma_size).tobytes())
    return Path(path)


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_live(page) -> None:
    """Open the Live tab and start streaming the (fake) camera."""
    page.get_by_role("tab", name="Live").click()
    page.locator("#live").get_by_text("Click to Access Webcam").click()
    page.locator("#live button", has_text="Record").click()


def count_live_frames(page, seconds: float) -> tuple[int, str]:
    """How many different answered frames the page shows in `seconds`, and the last answer's text."""
    changes, last = 0, None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        source = page.evaluate("() => document.querySelector('#live_faces img')?.src || null")
        if source and source != last:
            changes, last = changes + (last is not None), source
        time.sleep(0.01)
    return changes, page.locator("#live_summary").inner_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--seconds", type=float, default=20, help="how long answered frames are counted")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the app's sessions")
    parser.add_argument("--photo", help="the face in the fake video (default: the app's astronaut example)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--screenshot", help="save the page with its live answer here (PNG)")
    args = parser.parse_args(argv)
    executable = chromium_path()
    if executable is None:
        print("error: no Chromium: apt-get install chromium, or set CHROMIUM_PATH", file=sys.stderr)
        return 2
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    import app as app_module
    from genderage.serving import demo as demo_module

    answer_seconds = []
    analyse = demo_module.analyse_frame

    def timed_frame(*frame_args):
        started = time.perf_counter()
        try:
            return analyse(*frame_args)
        finally:
            answer_seconds.append(time.perf_counter() - started)

    demo_module.analyse_frame = timed_frame
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        photo = Image.open(args.photo or demo_module.EXAMPLES / "astronaut.png")
        video = fake_camera_video(Path(scratch) / "face.y4m", photo)
        demo = app_module.create_app(app_module.parse_args(["--model", args.model, "--feedback-dir", str(Path(scratch) / "feedback")]))
        demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable,
                                                     args=CHROMIUM_FLAGS + [f"--use-file-for-fake-video-capture={video}"])
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                page.set_default_timeout(60_000)
                page.goto(f"http://127.0.0.1:{port}/")
                start_live(page)
                page.locator("#live_faces img").wait_for()
                time.sleep(2)  # warm-up
                answer_seconds.clear()
                frames, summary = count_live_frames(page, args.seconds)
                if args.screenshot:
                    page.screenshot(path=args.screenshot, full_page=True)
                browser.close()
        finally:
            demo.close()
    figures = {"frame_size": list(FRAME_SIZE), "threads": args.threads, "seconds": args.seconds,
               "frames_per_second_shown": frames / args.seconds, "frames_answered": len(answer_seconds),
               "ms_per_frame_server": 1e3 * float(np.median(answer_seconds)) if answer_seconds else None,
               "last_answer": summary}
    print(f"live webcam, {FRAME_SIZE[0]}x{FRAME_SIZE[1]}, {args.threads} thread(s): {figures['frames_per_second_shown']:.1f} answered "
          f"frames/s shown in the page over {args.seconds:.0f} s; server median {figures['ms_per_frame_server'] or 0:.1f} ms per frame")
    print(f"last answer: {summary}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
