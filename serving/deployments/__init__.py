"""The Ray Serve deployments: ``TextModel``, ``VisionModel``, ``FusionModel`` and the ``Classifier`` ingress."""
