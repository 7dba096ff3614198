--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: computes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.computes (
    id text NOT NULL,
    workspace_id text NOT NULL,
    name text NOT NULL,
    name_key text NOT NULL,
    doc text NOT NULL,
    secrets text DEFAULT ''::text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);


--
-- Name: meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.meta (
    key text NOT NULL,
    value text NOT NULL
);


--
-- Name: models; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.models (
    id text NOT NULL,
    workspace_id text NOT NULL,
    name text NOT NULL,
    name_key text NOT NULL,
    version integer NOT NULL,
    doc text NOT NULL,
    artifact_key text NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: operation_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.operation_events (
    operation_id text NOT NULL,
    seq bigint NOT NULL,
    "time" bigint NOT NULL,
    level text NOT NULL,
    message text NOT NULL
);


--
-- Name: operations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.operations (
    id text NOT NULL,
    workspace_id text NOT NULL,
    workspace_name text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    target_name text NOT NULL,
    kind text NOT NULL,
    state text NOT NULL,
    step text DEFAULT ''::text NOT NULL,
    step_index integer DEFAULT 0 NOT NULL,
    attempt integer DEFAULT 0 NOT NULL,
    params text DEFAULT ''::text NOT NULL,
    scratch text DEFAULT ''::text NOT NULL,
    error text DEFAULT ''::text NOT NULL,
    cancel_requested integer DEFAULT 0 NOT NULL,
    lease_owner text DEFAULT ''::text NOT NULL,
    lease_expires bigint DEFAULT 0 NOT NULL,
    created_at bigint NOT NULL,
    started_at bigint DEFAULT 0 NOT NULL,
    finished_at bigint DEFAULT 0 NOT NULL,
    updated_at bigint NOT NULL
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at bigint NOT NULL
);


--
-- Name: services; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.services (
    id text NOT NULL,
    workspace_id text NOT NULL,
    compute_id text NOT NULL,
    name text NOT NULL,
    name_key text NOT NULL,
    doc text NOT NULL,
    secrets text DEFAULT ''::text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);


--
-- Name: tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tokens (
    id text NOT NULL,
    hash text NOT NULL,
    role text NOT NULL,
    workspace text DEFAULT ''::text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    created_at bigint NOT NULL,
    last_used_at bigint DEFAULT 0 NOT NULL,
    revoked_at bigint DEFAULT 0 NOT NULL
);


--
-- Name: workspaces; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.workspaces (
    id text NOT NULL,
    name text NOT NULL,
    name_key text NOT NULL,
    region text NOT NULL,
    settings text NOT NULL,
    created_at bigint NOT NULL
);


--
-- Data for Name: computes; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.computes VALUES ('cmp-k8s-scoped', 'ws-0001', 'k8s-scoped', 'k8s-scoped', '{"id":"cmp-k8s-scoped","name":"k8s-scoped","workspace":"ml-prod","type":"kubernetes","origin":"attached","clusterPurpose":"FastProd","loadBalancerType":"PublicIp","sslConfiguration":{"status":"Auto","leafDomainLabel":"scoring","fqdn":"scoring.berth.example.net","notAfter":"2027-02-01T10:00:00Z"},"provisioningState":"Succeeded","provisioningErrors":[],"health":"Healthy","properties":{"acmeAccount":"https://acme.example.org/acct/42","credentialMode":"scoped"},"kubernetesVersion":"1.30.4","nodeCount":3,"allocatableCpus":11.58,"endpoint":"203.0.113.10","lastReconcile":"2026-11-30T12:00:00Z","frontendImage":"ghcr.io/berth-ml/berth:0.4.0","attachmentId":"att-cmp-k8s-scoped","hasCredentials":true,"createdAt":"2026-12-01T16:32:19.628Z","updatedAt":"2026-12-01T16:32:19.628Z"}', 'v1:TJcCpifsGHRqqPvBhKRjB6WGUcLfi9zAI4YA8w1geLmeozgx/+Iujm8zhfCc/R0ElQDiG8Bz7r/U/ewNRyx1+ZYjc6/M7LhLZ/ASvMD7aj4foqnn5HjFMcrRPDlFlGqQiaOx1K6utcjOci/xEZV/odl99XhFWNMYVRgldsznNYZ9rmfxq0bwqTMjvHOrD2AjbYnjrM5pxlVDfKACcxeaHmuDcVUoE6Z6vR9bG7cOk2Q2q3qePkVLmOMRfzW3VXJji55z/gw1MLLcYgndPyD8W9ZF', 1796142739628, 1796142739628);
INSERT INTO public.computes VALUES ('cmp-k8s-asgiven', 'ws-0001', 'k8s-asgiven', 'k8s-asgiven', '{"id":"cmp-k8s-asgiven","name":"k8s-asgiven","workspace":"ml-prod","type":"kubernetes","origin":"attached","clusterPurpose":"DevTest","loadBalancerType":"PublicIp","sslConfiguration":{"status":"Auto","leafDomainLabel":"dev","fqdn":"dev.berth.example.net"},"provisioningState":"Succeeded","provisioningErrors":[],"health":"Unhealthy","properties":{"certificateError":"acme: error: 429 :: urn:ietf:params:acme:error:rateLimited","certificateFailures":"3","certificateRetryAt":"2026-12-01T14:30:00Z","context":"kind-berth","credentialMode":"as-given","team":"ml-platform"},"kubernetesVersion":"1.30.4","nodeCount":3,"allocatableCpus":11.58,"lastReconcile":"2026-11-30T12:00:00Z","frontendImage":"ghcr.io/berth-ml/berth:0.4.0","attachmentId":"att-cmp-k8s-asgiven","hasCredentials":true,"createdAt":"2026-12-01T16:32:19.637Z","updatedAt":"2026-12-01T16:32:19.637Z"}', 'v1:fLGUWt5UCg25j31JpZvo+YtW2gD1g6Xahvp0hCmrtwEVKEBmZ0uyas46fSdnI29AN0R05iVdwRw8cX+EeqazFdI26QyTpGXbqoisoYSLlTeisegx6avRKKJi', 1796142739637, 1796142739637);
INSERT INTO public.computes VALUES ('cmp-k8s-attaching', 'ws-0001', 'k8s-attaching', 'k8s-attaching', '{"id":"cmp-k8s-attaching","name":"k8s-attaching","workspace":"ml-prod","type":"kubernetes","origin":"attached","clusterPurpose":"FastProd","loadBalancerType":"InternalLoadBalancer","loadBalancerSubnet":"berth-ilb","sslConfiguration":{"status":"Disabled"},"provisioningState":"Attaching","provisioningErrors":[],"health":"Unknown","properties":{"credentialMode":"scoped","givenContext":"prod-admin"},"kubernetesVersion":"1.30.4","nodeCount":3,"allocatableCpus":11.58,"lastReconcile":"2026-11-30T12:00:00Z","frontendImage":"ghcr.io/berth-ml/berth:0.4.0","attachmentId":"att-cmp-k8s-attaching","hasCredentials":true,"createdAt":"2026-12-01T16:32:19.637Z","updatedAt":"2026-12-01T16:32:19.637Z"}', 'v1:C/7vEl37keKCkapKbamdLOklKaigMJNuqjl37u+LHgNfzibdqFLBDc1HdhM7WVGlYMPnkjKlBzOQZmGKRcwkwUMQgeMj4Pa8GyQ5h7+Vy3vTY85cUQf56ENxHzoc0z6cb9DKAoWGZ6i+cwdx3zaSSBGPvoF0w2Airo5Kjski39Kd5eekoDTEMnQez55G64xf4w==', 1796142739637, 1796142739637);
INSERT INTO public.computes VALUES ('cmp-aks-created', 'ws-0001', 'aks-created', 'aks-created', '{"id":"cmp-aks-created","name":"aks-created","workspace":"ml-prod","type":"aks","origin":"created","clusterPurpose":"FastProd","loadBalancerType":"PublicIp","sslConfiguration":{"status":"Auto","leafDomainLabel":"aks-created-x1y2","fqdn":"aks-created-x1y2.westeurope.cloudapp.azure.com","notAfter":"2027-02-01T10:00:00Z"},"provisioningState":"Succeeded","provisioningErrors":[],"health":"Healthy","properties":{"acmeAccount":"https://acme.example.org/acct/43","agentCount":"4","agentPoolName":"agentpool","azureCredential":"default","clusterName":"aks-created","credentialMode":"scoped","dnsLabel":"aks-created-x1y2","dnsServiceIp":"10.0.0.10","dnsZone":"westeurope.cloudapp.azure.com","dockerBridgeCidr":"172.17.0.1/16","fqdn":"aks-created-x1y2.westeurope.cloudapp.azure.com","kubernetesVersion":"1.30.4","location":"westeurope","resourceGroup":"berth-ml-prod","resourceId":"/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/berth-ml-prod/providers/Microsoft.ContainerService/managedClusters/aks-created","serviceCidr":"10.0.0.0/16","subnetName":"aks-subnet","subscriptionId":"00000000-1111-2222-3333-444444444444","vmSize":"Standard_D3_v2","vnetName":"berth-vnet","vnetResourceGroupName":"net-rg"},"kubernetesVersion":"1.30.4","nodeCount":3,"allocatableCpus":11.58,"endpoint":"aks-created-x1y2.westeurope.cloudapp.azure.com","lastReconcile":"2026-11-30T12:00:00Z","frontendImage":"ghcr.io/berth-ml/berth:0.4.0","attachmentId":"att-cmp-aks-created","hasCredentials":true,"createdAt":"2026-12-01T16:32:19.641Z","updatedAt":"2026-12-01T16:32:19.641Z"}', 'v1:IzOnZHkzO0b7iTXRTfvH9sAoK3dllW1ESjyPRW4qdP/Yb1AEK9TAv3y5VzdeN7XVkk4zXpgSu6AkjTEbjAJN6wQWRziuN61acRVqV/EYN1941Eqr5P5J9ESs', 1796142739641, 1796142739641);
INSERT INTO public.computes VALUES ('cmp-aks-attached', 'ws-0001', 'aks-attached', 'aks-attached', '{"id":"cmp-aks-attached","name":"aks-attached","workspace":"ml-prod","type":"aks","origin":"attached","clusterPurpose":"FastProd","loadBalancerType":"InternalLoadBalancer","loadBalancerSubnet":"ilb-subnet","sslConfiguration":{"status":"Disabled"},"provisioningState":"Succeeded","provisioningErrors":[],"health":"Healthy","properties":{"azureCredential":"","clusterName":"team-aks","credentialMode":"as-given","dnsZone":"northeurope.cloudapp.azure.com","location":"northeurope","resourceGroup":"team-rg","resourceId":"/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/team-rg/providers/Microsoft.ContainerService/managedClusters/team-aks","subscriptionId":"00000000-1111-2222-3333-444444444444","vmSize":"Standard_DS2_v2"},"kubernetesVersion":"1.30.4","nodeCount":3,"allocatableCpus":11.58,"lastReconcile":"2026-11-30T12:00:00Z","frontendImage":"ghcr.io/berth-ml/berth:0.4.0","attachmentId":"att-cmp-aks-attached","hasCredentials":true,"createdAt":"2026-12-01T16:32:19.641Z","updatedAt":"2026-12-01T16:32:19.641Z"}', 'v1:zdJC5P6iFRQpC3yEkFGt3Z6q7fbLErDHGtzf++S37zneN0ae2FXbTgl9rLcgP4/jvQ1IjZ1id7XN4m30EjSvCvD95F80ugRCeouC68BVq4/gHQ3dbl9ZpeO+', 1796142739641, 1796142739641);
INSERT INTO public.computes VALUES ('cmp-local', 'ws-0001', 'local', 'local', '{"id":"cmp-local","name":"local","workspace":"ml-prod","type":"local","origin":"created","clusterPurpose":"FastProd","loadBalancerType":"PublicIp","sslConfiguration":{"status":"Disabled"},"provisioningState":"Succeeded","provisioningErrors":[],"health":"Healthy","properties":{"port":"50123"},"nodeCount":1,"allocatableCpus":2,"endpoint":"127.0.0.1:50123","lastReconcile":"2026-11-30T12:00:00Z","frontendImage":"ghcr.io/berth-ml/berth:0.4.0","attachmentId":"att-cmp-local","hasCredentials":false,"createdAt":"2026-12-01T16:32:19.641Z","updatedAt":"2026-12-01T16:32:19.641Z"}', 'v1:HON8OZU7+l08uBsqAFlrksW3tZqQKkxlZBOK1Tkyggie2gp4/GzsrSazwdJPVp4gpnF5fRwhwnpHRZczB9qz7EmL9hFrRbrvj6ZU', 1796142739641, 1796142739641);
INSERT INTO public.computes VALUES ('cmp-test', 'ws-0001', 'test-flaky', 'test-flaky', '{"id":"cmp-test","name":"test-flaky","workspace":"ml-prod","type":"test","origin":"created","clusterPurpose":"FastProd","loadBalancerType":"PublicIp","sslConfiguration":{"status":"Disabled"},"provisioningState":"Succeeded","provisioningErrors":[],"health":"Healthy","properties":{"effectsDir":"/var/lib/berth-test/effects","failAt":"0","flakyAt":"2","stepDelay":"150ms","steps":"4"},"kubernetesVersion":"1.30.4","nodeCount":3,"allocatableCpus":11.58,"lastReconcile":"2026-11-30T12:00:00Z","frontendImage":"ghcr.io/berth-ml/berth:0.4.0","attachmentId":"att-cmp-test","hasCredentials":false,"createdAt":"2026-12-01T16:32:19.646Z","updatedAt":"2026-12-01T16:32:19.646Z"}', '', 1796142739646, 1796142739646);
INSERT INTO public.computes VALUES ('cmp-test-failed', 'ws-0001', 'test-failed', 'test-failed', '{"id":"cmp-test-failed","name":"test-failed","workspace":"ml-prod","type":"test","origin":"attached","clusterPurpose":"FastProd","loadBalancerType":"PublicIp","sslConfiguration":{"status":"Disabled"},"provisioningState":"Failed","provisioningErrors":[{"code":"StepFailed","message":"step 3 failed","target":"step3"}],"health":"Healthy","properties":{"effectsDir":"/tmp/effects","failAt":"3"},"kubernetesVersion":"1.30.4","nodeCount":3,"allocatableCpus":11.58,"lastReconcile":"2026-11-30T12:00:00Z","frontendImage":"ghcr.io/berth-ml/berth:0.4.0","attachmentId":"att-cmp-test-failed","hasCredentials":false,"createdAt":"2026-12-01T16:32:19.646Z","updatedAt":"2026-12-01T16:32:19.646Z"}', '', 1796142739646, 1796142739646);


--
-- Data for Name: meta; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: models; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: operation_events; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: operations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.operations VALUES ('op-attach-1', 'ws-0001', 'ml-prod', 'compute', 'cmp-k8s-attaching', 'k8s-attaching', 'attach', 'Pending', '', 0, 0, 'v1:H2fhtsjQiOnRgeLeX7P8myozQumQoY9oth0NiW4zrz11zYzB6NP2v8CRe4PIjtyu8cqnpgupZiIBfmfewF1K9oZ3THpyv6FvBsF5IY6/TxU+VE1WBO8kDyWUopGr4HynjKCKfOhZzc/clIPiuArZtWqvhiDQmFAIasyKpKkr5LdtUdAnOQa9u09t32TA4MBNJexvAWalGWh2XL1HXEuoDsJ31B/aD6J3X7fCDZZy/SblCsB1Fgv61UtC0tGRgFxieHit4r+2LQALRJQSbVJSHYpZ/O2Rb2dB6w==', '', '', 0, '', 0, 1796112000000, 0, 0, 1796112000000);


--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.schema_migrations VALUES (1, '0001_init.sql', 1796142739601);
INSERT INTO public.schema_migrations VALUES (2, '0002_models.sql', 1796142739609);
INSERT INTO public.schema_migrations VALUES (3, '0003_services.sql', 1796142739625);


--
-- Data for Name: services; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: tokens; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: workspaces; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.workspaces VALUES ('ws-0001', 'ml-prod', 'ml-prod', 'westeurope', '{"dnsZone":"berth.example.net","azureSubscriptionId":"00000000-1111-2222-3333-444444444444"}', 1793610000000);


--
-- Name: computes computes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.computes
    ADD CONSTRAINT computes_pkey PRIMARY KEY (id);


--
-- Name: computes computes_workspace_id_name_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.computes
    ADD CONSTRAINT computes_workspace_id_name_key_key UNIQUE (workspace_id, name_key);


--
-- Name: meta meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.meta
    ADD CONSTRAINT meta_pkey PRIMARY KEY (key);


--
-- Name: models models_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.models
    ADD CONSTRAINT models_pkey PRIMARY KEY (id);


--
-- Name: models models_workspace_id_name_key_version_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.models
    ADD CONSTRAINT models_workspace_id_name_key_version_key UNIQUE (workspace_id, name_key, version);


--
-- Name: operation_events operation_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operation_events
    ADD CONSTRAINT operation_events_pkey PRIMARY KEY (operation_id, seq);


--
-- Name: operations operations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operations
    ADD CONSTRAINT operations_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: services services_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_pkey PRIMARY KEY (id);


--
-- Name: services services_workspace_id_name_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_workspace_id_name_key_key UNIQUE (workspace_id, name_key);


--
-- Name: tokens tokens_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens
    ADD CONSTRAINT tokens_hash_key UNIQUE (hash);


--
-- Name: tokens tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens
    ADD CONSTRAINT tokens_pkey PRIMARY KEY (id);


--
-- Name: workspaces workspaces_name_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_name_key_key UNIQUE (name_key);


--
-- Name: workspaces workspaces_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_pkey PRIMARY KEY (id);


--
-- Name: operations_claim; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX operations_claim ON public.operations USING btree (state, lease_expires);


--
-- Name: operations_one_active; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX operations_one_active ON public.operations USING btree (target_id) WHERE (state = ANY (ARRAY['Pending'::text, 'Running'::text]));


--
-- Name: operations_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX operations_target ON public.operations USING btree (target_id, created_at);


--
-- Name: computes computes_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.computes
    ADD CONSTRAINT computes_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);


--
-- Name: models models_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.models
    ADD CONSTRAINT models_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);


--
-- Name: services services_workspace_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);


--
-- PostgreSQL database dump complete
--


