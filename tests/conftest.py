"""Test-session settings shared by every test module."""

import torch

# pytest-xdist runs one worker per core; torch's own intra-op threads on top oversubscribe the CPU
# and make small tensor ops 10-40x slower on a 2-core machine
torch.set_num_threads(1)
