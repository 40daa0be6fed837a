"""The core's training side: UnlearningTrainer, its arguments, evaluation loop, teacher cache, method state, engines and up-front checks."""
