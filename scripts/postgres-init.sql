-- docker-compose: the postgres image creates whatsapp_gateway (POSTGRES_DB); this adds the agent's database.
CREATE DATABASE ai_agent;
