-- One PostgreSQL server, a database per service: the registry never reads tracking tables.
CREATE DATABASE modelreg_tracking;
CREATE DATABASE modelreg_registry;
