"""The runtime models (text, vision, fusion), the model pack and the Ray Serve application with its HTTP API."""
