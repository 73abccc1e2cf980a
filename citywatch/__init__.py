"""CityWatch composition root: settings, the Faust app and agents, CLI, console."""
