"""``python -m spectral_probe`` runs the command-line interface."""

from spectral_probe.cli.main import main

if __name__ == "__main__":
    main(prog_name="spectral-probe")
