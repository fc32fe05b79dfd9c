// A plain Java producer for the partitioner test: writes one record per key given on the command
// line to a topic with the Java clients' default partitioner, and prints "<key> <partition>" for
// each as the broker acknowledged it. Exits 1 on the first failed send.
import java.io.FileInputStream;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public final class KeyedProducer {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    try (FileInputStream in = new FileInputStream(args[0])) {
      props.load(in);
    }
    props.put("key.serializer", StringSerializer.class.getName());
    props.put("value.serializer", StringSerializer.class.getName());
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
      for (int i = 2; i < args.length; i++) {
        RecordMetadata sent = producer.send(new ProducerRecord<>(args[1], args[i], args[i])).get();
        System.out.println(args[i] + " " + sent.partition());
      }
    }
  }
}
