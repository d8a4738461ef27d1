"""Write the example image set of config/studies/own_images.yaml: 48 PNG files (32 x 32, 8-bit)
of 16 patients, 36 'normal' and 12 'lesion' images (a bright disc), and manifest.csv.

    .venv/bin/python config/examples/own_images/make_images.py

The files are committed; the script says how they were made (same seed, same files).
"""

import csv
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
SIZE, PATIENTS, PER_PATIENT = 32, 16, 3


def image(rng: np.random.Generator, lesion: bool) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE]
    pixels = 70 + 25 * rng.standard_normal((SIZE, SIZE))
    if lesion:
        cy, cx = rng.uniform(9, SIZE - 9, 2)
        pixels += 90 * ((y - cy) ** 2 + (x - cx) ** 2 < rng.uniform(3, 6) ** 2)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for patient in range(PATIENTS):
        for k in range(PER_PATIENT):
            lesion = patient % 4 == 0  # 4 of the 16 patients: 12 lesion images
            name = f"images/p{patient:02d}_{k}.png"
            (HERE / "images").mkdir(exist_ok=True)
            sitk.WriteImage(sitk.GetImageFromArray(image(rng, lesion)), str(HERE / name))
            label = "lesion" if lesion else "normal"
            rows.append({"path": name, "label": label, "patient_id": f"p{patient:02d}"})
    with open(HERE / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "label", "patient_id"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
