"""The install lines that error messages and notes give, written once."""

CPU_INDEX = "https://download.pytorch.org/whl/cpu"

TORCH_INSTALL = (
    'pip install "skmixup[torch]" (from PyPI on Linux, PyTorch is a CUDA build, '
    "right for a GPU machine; for a CPU-only build install PyTorch first with "
    f"pip install torch --index-url {CPU_INDEX})"
)

PLOT_INSTALL = 'pip install "skmixup[plot]"'
