-- One PostgreSQL server, three databases, created on the first start of the postgres container
-- (POSTGRES_DB creates `supportloop`, the conversation store): MLflow's backend store and
-- Dagster's instance storage get their own, so neither can touch the other's tables.
CREATE DATABASE mlflow OWNER supportloop;
CREATE DATABASE dagster OWNER supportloop;
