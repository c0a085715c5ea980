"""aiassistant-runner: the Pipecat bot runtime of one AIAssistant (voice calls, text, tasks).

Where things are (one role per module; the objects are built and wired once, in wiring.py):

    __main__.py          the `aiassistant-runner` command: load and check the config, then serve
    server.py            the listening socket, and uvicorn with a drain on SIGTERM (one process)
    workers.py           `workers: N`: N such processes on the one socket, supervised
    wiring.py            every object of the process, built once (Runner, build_runner)
    app.py               the FastAPI app: routes, probes, metrics endpoint, access middleware
    text_routes.py       the text endpoints' POSTs, served ahead of the router (less CPU per turn)
    endpoints.py         the list of routes (--help, app.py's readers; a test checks it is the app's)
    chat_completions.py  POST /v1/chat/completions (OpenAI-compatible text conversations)
    chat_parameters.py   its request parameters: which are honoured, validated; response_format
    model_list.py        GET /v1/models: the chain's model ids, OpenAI-shaped
    openai_errors.py     OpenAI-shaped errors for every 4xx/5xx (and FastAPI's exception handlers)
    tasks.py             POST /v1/tasks (headless tasks with tools)
    voice_calls.py       WS /v1/calls/{serializer}: telephony handshake, admission, one call's life
    voice_pipeline.py    a call's STT -> LLM -> TTS pipeline
    voice_realtime.py    a call's speech-to-speech pipeline (xAI realtime)
    voice_parts.py       what both call pipelines share (services, transport, worker, end_call)
    media_streams.py     telephony stream manners: the provider's stop, utterance marks (heard/cut)
    interruptions.py     an interrupted answer is remembered only as far as the caller heard it
    text_engine.py       one text turn: the model, its tool calls, repeat
    llm_client.py        the text turns' OpenAI-compatible HTTP/SSE client and request body
    llm_factory.py       the Pipecat LLM services of voice calls (create_llm_service)
    llm_policy.py        LLM timeouts and retries, voice and text
    models.py            the model chain (engine model, fallbacks) with keys and endpoints
    fallbacks.py         when to ask the next model; the voice LLMSwitcher
    speech.py            STT and TTS services (create_stt, create_tts)
    tools.py             spec tools as webhooks, built-in tools' schemas
    access.py            who may call: tokens, Twilio signatures, stream tokens
    sessions.py          admission: capacity, drain, session counts
    pod_sessions.py      the session count of all the pod's worker processes (shared memory)
    bounds.py            request size, depth and time limits
    json_codec.py        the text path's JSON (orjson; the standard library where orjson has no answer)
    key_check.py         the start-up check of each provider key
    metrics.py           Prometheus metrics
    logs.py              logging setup with secret redaction
    playground.py        the browser playground's routes; playground_events.py its call events
"""

__version__ = "0.1.0"
