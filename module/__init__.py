"""Model building blocks shared across tasks: heads, distillation losses."""
