"""vggbench: benchmarks and ablations for the VGG paper."""

__version__ = "0.1.0"
