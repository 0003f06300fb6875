-- One database per service (each service owns its data).
CREATE DATABASE qilu_registry;
CREATE DATABASE qilu_review;
CREATE DATABASE qilu_awards;
