"""Gradio demo of a genderage model: every face in a photo with its perceived gender and age group.

Usage:
    python app.py [--model models/default | HUB_ID] [--host 127.0.0.1] [--port 7860] [--feedback-dir feedback]
                  [--concurrency 2] [--max-queue 64]
"""

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    from genderage.serving.inference import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("GENDERAGE_MODEL", DEFAULT_MODEL), help="model folder or Hub id")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to serve on (a Space sets GRADIO_SERVER_NAME=0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)))
    parser.add_argument("--feedback-dir", default="feedback", help="where consented corrections are stored")
    parser.add_argument("--min-face-confidence", type=float, default=0.9, help="MTCNN face probability needed to report a face (MTCNN looks only where CenterFace, with its own 0.5 threshold, found none)")
    parser.add_argument("--uncertain-below", type=float, default=0.6, help="show 'uncertain' under this probability")
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation by default")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for the classifier (faster on recent CPUs)")
    parser.add_argument("--max-file-size", default="20mb", help="largest upload accepted")
    parser.add_argument("--concurrency", type=positive_int, default=2, help="requests processed at once; the rest wait in the queue")
    parser.add_argument("--max-queue", type=positive_int, default=64,
                        help="requests that may wait in the queue; beyond that a client is told 'Queue is full'")
    return parser.parse_args(argv)


def create_app(args: argparse.Namespace):
    """Load the model and detector once and build the Blocks."""
    from genderage.serving.analysis import FaceAnalyzer
    from genderage.serving.demo import build_demo
    from genderage.serving.faces import FaceDetector
    from genderage.serving.inference import GenderAgeClassifier

    classifier = GenderAgeClassifier.from_pretrained(args.model, bf16=args.bf16)
    analyzer = FaceAnalyzer(classifier, FaceDetector(args.min_face_confidence, chip=classifier.face_chip), args.flip)
    return build_demo(analyzer, args.feedback_dir, args.uncertain_below)


def port_in_use(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def main(argv=None) -> int:
    args = parse_args(argv)
    from genderage.serving.inference import check_model

    if port_in_use(args.host, args.port):
        print(f"error: port {args.port} on {args.host} is in use; choose another with --port N (with make demo: PORT=N make demo)",
              file=sys.stderr)
        return 2
    try:
        check_model(args.model)  # before Gradio's import: a mistyped --model is answered at once
        demo = create_app(args)
    except OSError as error:
        print(f"error: cannot load the model {args.model!r}: {error}", file=sys.stderr)
        return 2
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.max_queue)
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=args.max_file_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
