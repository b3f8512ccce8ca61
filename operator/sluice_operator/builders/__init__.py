"""Pure builders: InferenceService spec -> Kubernetes manifests (dicts), no I/O."""
