"""The code of the logged model ("models from code"): MLflow runs this file to load it.

Kept apart from `models/pyfunc.py` so that importing that module never registers a model.
"""

import mlflow

from models.pyfunc import IntentPyfunc

mlflow.models.set_model(IntentPyfunc())
