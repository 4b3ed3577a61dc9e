"""ConceptDrift: how well the served model still predicts the newly arrived, labelled span."""
