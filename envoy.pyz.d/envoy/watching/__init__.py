"""`watch`: a live view of the workers, kept current incrementally (fleet), drawn with curses (screen)."""
