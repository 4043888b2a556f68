"""Run jobs side by side in fresh processes (spawned, each with its own torch thread count): the ablation batch."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed

__all__ = ["in_parallel"]


def _worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def in_parallel(fn, jobs: list[tuple], workers: int, threads: int, what: str) -> list[str]:
    """``fn(*job)`` for every job in ``workers`` fresh processes of ``threads`` torch threads each; returns the
    failures as 'job: error' lines (every other job still finishes and is cached)."""
    from tqdm.auto import tqdm
    import multiprocessing as mp

    failed = []
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_threads,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(fn, *job): job for job in jobs}
        for fut in tqdm(as_completed(futures), total=len(futures), desc=what):
            try:
                fut.result()
            except Exception as e:  # noqa: BLE001 - reported below, with the job, after the others finished
                failed.append(f"{futures[fut]}: {type(e).__name__}: {e}")
    return failed
