"""The app file `flwr run` loads (fedlab.flower.write_app) still finds fedlab's apps after the
Flower modules became the fedlab/flower/ package. Needs Flower: a tests/test_flower*.py file, left
out with Flower by `dev.py compat --lowest` (tests/test_old_import_paths.py has the rest)."""


def test_the_flower_apps_flwr_run_loads_are_the_apps_modules():
    """`write_app`'s module does `from fedlab import flower; server_app = flower.server_app`."""
    from fedlab import flower
    from fedlab.flower import apps

    assert flower.server_app is apps.server_app and flower.client_app is apps.client_app
