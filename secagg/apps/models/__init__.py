MODELS = ("logistic", "mlp")  # the fraud models of secagg.apps.models.nets
