"""Viewing: plots of data, rewards and training curves (:mod:`.plots`) and the rollout viewer (:mod:`.rollouts`:
filter / sort / render a run's rollout log, an ipywidgets browser and a static best/worst grid)."""
