"""The modelreg tracking service: experiments, runs, params, metrics, tags and artifacts.

Layout (the README's Architecture section): ``api/`` speaks gRPC, ``domain/`` holds the rules,
entities and use cases, ``store/`` persists them with SQLAlchemy in the tracking database, and
``artifacts/`` keeps the files (file:// or s3://, chosen by the artifact root's scheme).
"""
