"""Console scripts of the installed package (pyproject.toml [project.scripts]): each runs a command's
`main` through `run_cli`, so errors are one line with exit status 2, as with `python train.py`."""
from data_utils.errors import run_cli


def train():
    import train as command
    run_cli(command.cli_main)


def prepro():
    import prepro as command
    run_cli(command.main)


def gpp_dfd():
    import run_GDbert_glue as command
    run_cli(command.main)


def export():
    from mt_dnn import export as command
    run_cli(command.main)


def evaluate():
    from mt_dnn import evaluate as command
    run_cli(command.main)


def predict():
    from mt_dnn import predict as command
    run_cli(command.main)


def compress():
    from mt_dnn import compress as command
    run_cli(command.main)


def onnx_export():
    from mt_dnn import onnx_export as command
    run_cli(command.main)
