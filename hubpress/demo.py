"""`make demo`: run the main job on local defaults (no token, no S3, no network)."""

from __future__ import annotations


def main() -> None:
    print("hubpress demo: nothing to run yet")


if __name__ == "__main__":
    main()
