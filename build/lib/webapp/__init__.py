"""The Gradio face: renders engine state and calls engine operations, nothing more."""
