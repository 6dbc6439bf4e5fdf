"""gradcheck: backprop's gradients against central differences, with verdicts and reports."""
