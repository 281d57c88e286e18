#!/usr/bin/env python3
# Regenerates the small GGUF seeds in corpus/gguf_fuzz/ (checked in; run from anywhere).
import os; os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "gguf_fuzz"))
import struct, sys
def s(x): x=x.encode(); return struct.pack('<Q',len(x))+x
def kv(k,t,payload): return s(k)+struct.pack('<I',t)+payload
def arr(et,items,enc): return struct.pack('<IQ',et,len(items))+b''.join(enc(i) for i in items)
def build(kvs, tensors, align=32):
    out=b'GGUF'+struct.pack('<IQQ',3,len(tensors),len(kvs))+b''.join(kvs)
    off=0; datas=[]
    for name,dims,typ,data in tensors:
        out+=s(name)+struct.pack('<I',len(dims))+b''.join(struct.pack('<q',d) for d in dims)+struct.pack('<IQ',typ,off)
        pad=(-len(data))%align; datas.append(data+b'\0'*pad); off+=len(data)+pad
    out+=b'\0'*((-len(out))%align)
    return out+b''.join(datas)
scalars=[kv('u8',0,b'\x07'),kv('i8',1,b'\xf9'),kv('u16',2,struct.pack('<H',500)),kv('i16',3,struct.pack('<h',-5)),
 kv('u32',4,struct.pack('<I',64)),kv('i32',5,struct.pack('<i',-1)),kv('f32',6,struct.pack('<f',1e-5)),kv('b',7,b'\x01'),
 kv('general.architecture',8,s('llama')),kv('u64',10,struct.pack('<Q',1<<40)),kv('i64',11,struct.pack('<q',-3)),kv('f64',12,struct.pack('<d',0.5))]
toks=kv('tokenizer.ggml.tokens',9,arr(8,['<unk>','<s>','</s>','<0x0A>','a','b','ab'],s))
scores=kv('tokenizer.ggml.scores',9,arr(6,[0.0,-1.0,-2.0,-3.0,-4.0,-5.0,-6.0],lambda f:struct.pack('<f',f)))
types=kv('tokenizer.ggml.token_type',9,arr(5,[2,3,3,6,1,1,1],lambda i:struct.pack('<i',i)))
nested=kv('nested',9,arr(9,[[1,2],[],[3]],lambda a:arr(4,a,lambda i:struct.pack('<I',i))))
open('scalars.gguf','wb').write(build(scalars,[]))
open('vocab.gguf','wb').write(build([kv('general.architecture',8,s('llama')),kv('tokenizer.ggml.model',8,s('llama')),toks,scores,types,nested],[]))
t=[('token_embd.weight',[8,7],0,bytes(range(224))),('blk.0.attn_q.weight',[32,2],8,b'\x01'*68),
   ('blk.0.ffn_down.weight',[256],12,b'\x02'*144),('output_norm.weight',[8],1,b'\x03'*16)]
open('tensors.gguf','wb').write(build(scalars[:9]+[toks],t))
open('align64.gguf','wb').write(build([kv('general.alignment',4,struct.pack('<I',64)),toks],t[:2],64))
open('v2.gguf','wb').write(b'GGUF'+struct.pack('<IQQ',2,0,1)+kv('general.name',8,s('v2')))
