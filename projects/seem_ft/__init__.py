"""SEEM v1 fine-tuning on ovseg (issue 11): ``seem_ft`` holds the model, its losses and (``seem_ft.data``) the data."""
