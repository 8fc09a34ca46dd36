"""The commands run on a trained model, as `python -m mt_dnn.<command>`: export (the structurally smaller
GPP model), compress (int8, fp16/int8 embedding tables and bitmask storage), onnx_export, evaluate and
predict, with the serving engines they run on (engines, sparse_linear). The package keeps MT-DNN's name: these are its
command lines."""
