"""The modelreg registry service: registered models, numbered versions, stages, aliases, history.

Layout (the README's Architecture section): ``api/`` speaks gRPC, ``domain/`` holds the rules and
entities, ``store/`` persists them with SQLAlchemy in the registry's own database, ``lineage.py``
asks the tracking service about runs through the ``modelreg`` client, and ``lineage_codec.py`` is
the stored form of the lineage it returns.
"""
