"""What train.py does before its loop: the output directory and log, devices, data, model, summary.

Every function takes what it needs as arguments; none reads global state.
"""
import logging
import os
import random
import sys

import numpy as np
import torch

from data_utils.batcher import check_fits_model, load_canonical
from data_utils.errors import UserError
from data_utils.manifest import check_canonical_data
from data_utils.task_def import resolve_dataset
from modeling import pretrained
from modeling.families import family_of
from data_utils.files import write_json_atomic
from modeling.model import MTDNNModel, load_encoder, load_heads
from training.options import split_names

logger = logging.getLogger("train")


def setup_output(args, owner, dist_info, resumed=None, resume_path=None) -> None:
    """The output directory, claimed by `owner` (a training.run_dir.RunDirectory: the lock, run.json, the
    refusals, the signal handlers; `resumed` is the checkpoint a --resume/--model_ckpt run continues), and
    the log (log.log and stdout) on the main process; other processes log nothing."""
    logger.handlers.clear()
    logger.propagate = False
    owner.claim(dist_info, resumed, resume_path)
    if not dist_info.is_main:
        logger.addHandler(logging.NullHandler())
        return
    log_path = args.log_file if os.path.isabs(args.log_file) else os.path.join(args.output_dir, args.log_file)
    try:
        log_handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError as err:
        raise UserError(f"--log_file {log_path}: cannot open it ({err.strerror}); choose another file") from None
    # A full disk is reported once, by the next checkpoint or output file, not as a traceback per log line.
    log_handler.handleError = lambda record: None
    logger.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(message)s", "%m/%d %H:%M:%S")
    for handler in (log_handler, logging.StreamHandler(sys.stdout)):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    owner.log_notes()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int) -> str:
    """--num_threads: torch's intra-op threads and numba's (0 leaves each library's default). Returns what runs,
    for the log."""
    numba_threads = "no numba"
    try:
        import numba
    except ImportError:
        pass
    else:
        if threads:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        numba_threads = f"numba {numba.get_num_threads()}"
    if threads:         # after numba's: starting numba's thread pool resets torch's count to the cores
        torch.set_num_threads(threads)
    # The instruction set torch's kernels were dispatched for: float rounding (and so the bits of a run) can
    # differ between hosts that differ here (README: "Same command, same result").
    return f"threads: torch {torch.get_num_threads()}, {numba_threads}; CPU kernels: {torch.backends.cpu.get_cpu_capability()}"


def pick_device(choice: str, dist_info=None) -> torch.device:
    """--device as a torch device; each process of a distributed CUDA run takes its local GPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible; use --device auto or cpu")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if choice == "auto" else torch.device(choice)
    if device.type == "cuda" and dist_info is not None and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
    return device


def load_data(args, task_defs: dict):
    """Training sets (one per task) and, per test dataset, its dev and (optional) test sets."""
    train_sets = []
    for name in split_names(args.train_datasets):
        task = task_defs.get(name)
        if task is None:
            raise UserError(f"--train_datasets: unknown task '{name}' (known: {', '.join(task_defs)})")
        path = os.path.join(args.data_dir, f"{name}_train.json")
        train_sets.append(load_canonical(path, f"{name}_train", task, args.max_seq_len))
    trained = {d.task.name for d in train_sets}
    eval_sets = []
    for name in split_names(args.test_datasets):
        task = resolve_dataset(name, task_defs)
        if name not in task.dataset_prefixes():
            raise UserError(f"--test_datasets: unknown dataset '{name}' (task {task.name} provides "
                            f"{', '.join(task.dataset_prefixes())})")
        if task.name not in trained:
            raise UserError(f"--test_datasets: '{name}' belongs to task '{task.name}', which is not in "
                            f"--train_datasets; add it there or drop it here")
        dev = load_canonical(os.path.join(args.data_dir, f"{name}_dev.json"), f"{name}_dev", task, args.max_seq_len)
        test_path = os.path.join(args.data_dir, f"{name}_test.json")
        test = load_canonical(test_path, f"{name}_test", task, args.max_seq_len) \
            if os.path.isfile(test_path) else None
        eval_sets.append((dev, test))
    return train_sets, eval_sets


def build_model(args, train_sets, eval_sets, device):
    """(MTDNNModel on `device`, tokenizer): the --init_checkpoint encoder, a head per trained task
    (loaded too when --init_checkpoint is a train.py output holding them), after checking that the
    data fits it (tokenizer, length, vocabulary)."""
    encoder = load_encoder(args.init_checkpoint, args.dropout_p)
    tokenizer = pretrained.load_tokenizer(args.init_checkpoint)
    datasets = [*train_sets, *(d for pair in eval_sets for d in pair if d is not None)]
    # prepro's manifest: the data was made with this tokenizer and at least --max_seq_len tokens
    check_canonical_data(args.data_dir, tokenizer, args.max_seq_len, [d.name for d in datasets],
                         warn=lambda message: logger.warning("warning: %s", message))
    check_fits_model(datasets, encoder.config, args.init_checkpoint,
                     max_positions=family_of(encoder.config).max_positions(encoder.config))
    model = MTDNNModel(encoder, {d.task.name: d.task for d in train_sets}, args.dropout_p)
    if os.path.isdir(args.init_checkpoint):
        loaded = load_heads(model, args.init_checkpoint)
        if loaded:
            logger.info("loaded task heads for %s from %s", ", ".join(loaded), args.init_checkpoint)
    return model.to(device), tokenizer


def wrap_distributed(model, dist_info, device):
    """`model` itself, or DDP around it in a distributed run."""
    if not dist_info.enabled:
        return model
    # Every rank trains the same task at each update, but the other tasks' heads get no gradient.
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[dist_info.local_rank] if device.type == "cuda" else None, find_unused_parameters=True)


def open_tensorboard(args, dist_info, resumed=None):
    """A SummaryWriter under --output_dir (or --tensorboard_logdir) when --tensorboard, on the main process.
    A resumed run purges the events after its checkpoint's update (those of the run it continues, which
    went on after that checkpoint before it stopped)."""
    if not (args.tensorboard and dist_info.is_main):
        return None
    from torch.utils.tensorboard import SummaryWriter
    logdir = args.tensorboard_logdir if os.path.isabs(args.tensorboard_logdir) \
        else os.path.join(args.output_dir, args.tensorboard_logdir)
    purge_step = resumed["loop"]["global_step"] + 1 if resumed else None
    return SummaryWriter(logdir, purge_step=purge_step)


def write_run_config(args, dist_info, device, total_steps: int, batches_per_epoch: int) -> None:
    """config.json: the resolved flags and what they came to."""
    if dist_info.is_main:
        write_json_atomic(os.path.join(args.output_dir, "config.json"),
                          {**vars(args), "total_steps": total_steps, "batches_per_epoch": batches_per_epoch,
                           "device": str(device), "world_size": dist_info.world_size})


def log_summary(args, train_sets, eval_sets, dist_info, batches_per_epoch, total_steps, model, device, methods):
    logger.info("=" * 60)
    for dataset in train_sets:
        logger.info("train %-22s %7d examples", dataset.name, len(dataset))
    for dev, test in eval_sets:
        logger.info("eval  %-22s %7d dev, %s test", dev.name.rsplit("_", 1)[0], len(dev), len(test) if test else "no")
    logger.info("effective batch %d (batch %d x accumulation %d x processes %d); %d batches/epoch; %d epochs; "
                "%d updates", args.batch_size * args.grad_accumulation_step * dist_info.world_size, args.batch_size,
                args.grad_accumulation_step, dist_info.world_size, batches_per_epoch, args.epochs, total_steps)
    described = methods.describe()
    logger.info("encoder %s: %d parameters; optimizer %s lr %g; device %s; pruner %s%s", args.init_checkpoint,
                sum(p.numel() for p in model.encoder.parameters()), args.optimizer, args.learning_rate, device,
                args.pruner, f" ({described})" if described else "")
    logger.info("=" * 60)
