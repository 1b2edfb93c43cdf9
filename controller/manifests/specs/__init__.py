"""One spec model per kind; the kind (in ``controller/kinds/``) names it: ``Kind.spec_model``."""
