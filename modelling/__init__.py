"""The model lab: dataset readers, training of the heads and fusion, evaluation and reports.

Never imported at run time: serving loads the pack this lab writes.
"""
