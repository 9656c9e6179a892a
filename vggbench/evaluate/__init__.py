"""The paper's test protocols (Section 3.2) and their evaluation over datasets.

protocols.py  the tensor math: center, dense, multi-crop, fusion, top-k
engine.py     one model (or a fusion) over a dataset with each protocol: errors and costs
sources.py    the models to evaluate: stored runs, checkpoint files, torchvision weights
records.py    evaluations that end as stored records (`vggbench eval`, the ablations)
"""
