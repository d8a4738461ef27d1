"""Write the synthetic tumour dataset as NIfTI image/mask pairs with a manifest (folder format)."""

import _libpath  # noqa: F401

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from medimbalance.data.synthetic import TUMOUR_REGIONS, TumoursSpec, make_tumours
from medimbalance.logs import log_to_file

log = log_to_file(snakemake.log[0])
spec = TumoursSpec(**snakemake.params.spec)
images, masks = make_tumours(spec)
folder = Path(snakemake.output.manifest).parent
(folder / "cases").mkdir(parents=True, exist_ok=True)

rows = []
for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
    case = f"case_{i:04d}"
    # Channels last, as in the decathlon's 4D NIfTI files; 2D slices as (X, Y, 1, C).
    volume = np.moveaxis(image, 0, -1) if image.ndim == 4 else image.transpose(1, 2, 0)[:, :, None]
    nib.save(nib.Nifti1Image(volume, np.eye(4)), folder / f"cases/{case}.nii.gz")
    nib.save(nib.Nifti1Image(mask, np.eye(4)), folder / f"cases/{case}_mask.nii.gz")
    rows.append(
        {"path": f"cases/{case}.nii.gz", "mask": f"cases/{case}_mask.nii.gz", "patient_id": case}
    )
pd.DataFrame(rows).to_csv(snakemake.output.manifest, sep="\t", index=False)
log.info(
    "wrote %d cases; tumour voxel fraction %.4f; regions %s",
    len(rows),
    float((masks > 0).mean()),
    TUMOUR_REGIONS,
)
