"""Data: RefCOCO/+/g (REFER layout), ReasonSeg (LISA layout), the training draw, the policy dataset.

A record is a plain dict, one per expression (REFER) or per query (ReasonSeg), holding the GT mask as a COCO RLE
at the ORIGINAL image size (rewards and metrics compare there). :func:`build_policy_dataset` turns records into
the HF dataset the GRPO trainer reads: the image resized to 840 x 840 (SAM-R1 §4.1), a conversational ``prompt``
(TRL's VLM format) and the GT. Synthetic worlds in the same on-disk layouts (:mod:`.synthetic`, :mod:`.toy_world`)
stand in for the real datasets in tests and on CPUs.

CLI: ``python -m samr1lib.data sample ...`` (the 3k draw) and ``python -m samr1lib.data synth ...``.
"""

from .draw import sample_refer, select_manifest, write_manifest
from .policy_dataset import build_policy_dataset, policy_features
from .reasonseg import REASONSEG_SPLITS, load_reasonseg
from .records import RecordList, open_image
from .refer import REFER_IMAGE_DIR, REFER_SPLIT_BY, load_refer
from .sources import SOURCES, check_source, register_source, source_records, training_dataset

__all__ = [
    "RecordList", "open_image", "load_refer", "load_reasonseg", "REFER_SPLIT_BY", "REFER_IMAGE_DIR",
    "REASONSEG_SPLITS", "sample_refer", "write_manifest", "select_manifest", "build_policy_dataset",
    "policy_features", "SOURCES", "check_source", "register_source", "source_records", "training_dataset",
]
