"""genderage: messy photo collections → a fine-tuned, honestly measured gender-and-age classifier on the Hub.

Stages, one module each: sources → images → dedup → splits → data (ImageFolder); config → modeling →
transforms → training → evaluation → model_card → hub; inference → faces → analysis → demo → space.
Heavy libraries are imported by the modules that need them, so importing the package stays cheap.
"""

__version__ = "0.1.0"
