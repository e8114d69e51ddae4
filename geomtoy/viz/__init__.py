"""Presentation: figure helpers (plot), shared colours (style) and the explorer page (explore,
with its HTML/CSS/JS in assets/). Nothing here trains; plot imports matplotlib, the others do
not."""
