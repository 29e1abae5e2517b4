MODELS = ("logistic", "mlp")  # the fraud models of secagg.models.nets
