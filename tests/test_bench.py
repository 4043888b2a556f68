"""The reward benchmark runs at a small size and reports both paths on the same inputs."""


from samr1lib.experiments.bench import main
from samr1lib.experiments.reward_bench import make_group_inputs, run_reward_bench


def test_reward_bench_small(capsys):
    res = run_reward_bench(image_size=256, group_size=4, groups=2, height=60, width=80, log=lambda *_: None)
    assert res.masks_agree and res.min_iou >= 0.999
    assert res.batched_s > 0 and res.naive_s > 0
    # one encoding per group against one per completion: the batched path must be faster
    assert res.speedup > 1.0


def test_reward_bench_cli_prints_ratio_last(capsys):
    assert main(["reward", "--image-size", "256", "-G", "2", "--groups", "1", "--height", "48", "--width", "64"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("speed-up of batched over naive at G=2:") and last.endswith("x")


def test_group_inputs_are_seeded():
    a = make_group_inputs(2, 3, 32, 40, seed=5)
    b = make_group_inputs(2, 3, 32, 40, seed=5)
    assert all((x[0] == y[0]).all() and x[1] == y[1] for x, y in zip(a, b))
    assert len(a[0][1]) == 3
