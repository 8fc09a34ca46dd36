"""The training run of train.py: its flags (options), optimizers and LR schedules (optim), the output
directory it owns (run_dir), its state and resume (run_state, checkpoint), its start-up, evaluation
(inference) and outputs. Imports the model (modeling) and the methods, never the commands."""
