"""aiassistant-runner: the Pipecat bot runtime of one AIAssistant (voice calls, text, tasks)."""

__version__ = "0.1.0"
