"""samr1lib: the library behind the SAM-R1 notebooks (arXiv 2505.22596).

The modules follow one GRPO step's data flow; each imports only from the stages above it in this list:

    masks, frames        arrays <-> COCO RLE; coordinate frames (policy 840 x 840 <-> original image)
    config, presets      TrainConfig (the paper run, a docstring per field); the CPU presets
    data                 REFER / ReasonSeg records, synthetic worlds, the 3k draw, the policy dataset
    prompt               the one prompt and its JSON keys
    policy               load (real or tiny offline Qwen2.5-VL), generate (transformers, vLLM)
    parse                completion text -> Answer or a typed Failure
    segmenters           SAM2 / GrabCut; answer_masks(): parse -> frame -> segment -> resize, used everywhere
    metrics              IoU, gIoU / cIoU, box accuracy, S-measure, salient-object metrics
    rewards              Eq. 5 tiers, format rewards, segmentation reward, A.2 points, Seg-R1, StAR
    losses               the GRPO objective, Eq. 2-4 (the reference the trainer is tested against)
    train                SAMR1GRPOTrainer (Eq. 4 loss, REST), the rollout log, the entry point
    view                 plots and the rollout viewer
    evaluate             generate -> segment -> gIoU / cIoU per split with full accounting; diffs of two runs;
                         one checkpoint chosen on val for every benchmark; StAR's voting
    experiments          the leaf: toy world pipeline, warm starts, probes, ablations, benchmarks, notebook runner

Import submodules directly (``from samr1lib import rewards``); this file stays light so that ``import samr1lib``
does not pull in torch or transformers.
"""

__version__ = "0.1.0"
