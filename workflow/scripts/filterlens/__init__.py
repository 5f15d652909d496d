"""filterlens: capture, normalize and render the feature maps of torchvision CNNs.

Pure functions used by the workflow's thin scripts. Modules that need torch (`models`,
`weights.load_state_dict`) import it themselves, so rendering jobs never pay its import cost.
"""

__version__ = "0.1.0"
