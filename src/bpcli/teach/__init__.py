"""A learner's own maths: diagnose their gradients, classic mistakes, worksheets, single steps."""
