// KafkaLogin PROPERTIES_FILE TOPIC: log in with Kafka's own Java client (the client Logstash,
// Kafka UI and the broker's tools use) and describe TOPIC. Exit 0 and print its partition
// count, or exit 1 with the error's class. Run as a single-file program: java -cp <kafka jars>
// KafkaLogin.java ... (tests/test_compose_kafka_broker.py).
import java.io.FileReader;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TopicDescription;

public class KafkaLogin {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    try (FileReader reader = new FileReader(args[0])) {
      props.load(reader);
    }
    props.putIfAbsent("request.timeout.ms", "10000");
    props.putIfAbsent("default.api.timeout.ms", "20000");
    try (Admin admin = Admin.create(props)) {
      TopicDescription topic = admin.describeTopics(List.of(args[1])).allTopicNames().get().get(args[1]);
      System.out.println(topic.partitions().size());
    } catch (Exception e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      System.out.println(cause.getClass().getSimpleName());
      System.exit(1);
    }
  }
}
